//! ES256 (ECDSA P-256 with SHA-256) keys: generation, their RFC 7638 thumbprint, their
//! public JWK (RFC 7518 §6.2), and compact JWS signing (RFC 7515).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
const POINT_BYTES: usize = 65;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the private key does not parse: {0}")]
    Rejected(String),
    #[error("the public key is not an uncompressed P-256 point")]
    BadPoint,
    #[error("no randomness for a key or a signature")]
    Random,
}

/// A private key that signs, with the thumbprint that names it.
pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

/// A new key pair as PKCS#8, and its public point.
pub fn generate() -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Random)?;
    let key = SigningKey::from_pkcs8(pkcs8.as_ref())?;
    Ok((pkcs8.as_ref().to_vec(), key.public_point().to_vec()))
}

impl SigningKey {
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let kid = PublicJwk::of(pair.public_key().as_ref())?.kid;
        Ok(SigningKey { kid, pair })
    }

    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// A compact JWS of `claims` with the header `alg: ES256`, this key's `kid` and
    /// `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = Header {
            alg: "ES256",
            typ,
            kid: &self.kid,
        };
        let mut jws = encode_json(&header);
        jws.push('.');
        jws.push_str(&encode_json(claims));
        // ES256 signatures are r and s of 32 bytes each, which FIXED signing gives.
        let signature = self
            .pair
            .sign(&SystemRandom::new(), jws.as_bytes())
            .map_err(|_| KeyError::Random)?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }
}

/// The payload of a compact JWS signed with ES256 by the key its header names, which
/// `point_of` finds by `kid` (an uncompressed P-256 point); `None` for anything else:
/// another shape, another algorithm, an unknown key, a wrong signature. The claims are
/// not checked here.
pub fn verified_payload<'k>(
    jws: &str,
    point_of: impl Fn(&str) -> Option<&'k [u8]>,
) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: String,
    }
    let mut parts = jws.split('.');
    let (header_part, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_part).ok()?).ok()?;
    if header.alg != "ES256" {
        return None;
    }
    let point = point_of(&header.kid)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signed = &jws[..header_part.len() + 1 + payload.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(signed.as_bytes(), &signature)
        .ok()?;
    URL_SAFE_NO_PAD.decode(payload).ok()
}

#[allow(
    clippy::expect_used,
    reason = "claims are plain structs, which always serialize"
)]
fn encode_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("claims serialize to JSON");
    URL_SAFE_NO_PAD.encode(json)
}

/// The public half of a key as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub y: String,
    /// The RFC 7638 thumbprint.
    pub kid: String,
    #[serde(rename = "use")]
    pub usage: &'static str,
    pub alg: &'static str,
}

impl PublicJwk {
    /// The JWK of an uncompressed P-256 point.
    pub fn of(point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != POINT_BYTES || point[0] != 0x04 {
            return Err(KeyError::BadPoint);
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        // RFC 7638 §3.2: the required members only, in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(PublicJwk {
            kty: "EC",
            crv: "P-256",
            x,
            y,
            kid,
            usage: "sig",
            alg: "ES256",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // The P-256 key of RFC 7515 Appendix A.3, whose thumbprint other
        // implementations agree on.
        let x = URL_SAFE_NO_PAD
            .decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
            .unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let jwk = PublicJwk::of(&point).unwrap();
        assert_eq!(jwk.kid, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
        assert_eq!(jwk.x, "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
    }

    #[test]
    fn a_signature_verifies_with_the_public_point_and_names_the_key() {
        let (pkcs8, point) = generate().unwrap();
        let key = SigningKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public_point(), &point[..]);
        let jws = key
            .sign("token-introspection+jwt", &serde_json::json!({"a": 1}))
            .unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], PublicJwk::of(&point).unwrap().kid.as_str());
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64);
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(signed.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn only_a_signature_of_the_named_key_verifies() {
        let (pkcs8, point) = generate().unwrap();
        let key = SigningKey::from_pkcs8(&pkcs8).unwrap();
        let (_, other_point) = generate().unwrap();
        let jws = key.sign("JWT", &serde_json::json!({"sub": "a"})).unwrap();
        let known = |kid: &str| (kid == key.kid).then_some(&point[..]);
        assert_eq!(
            verified_payload(&jws, known).unwrap(),
            br#"{"sub":"a"}"#.to_vec()
        );
        // Another key under the same kid, an unknown kid, a changed payload, a changed
        // signature, and the wrong number of parts all fail.
        assert!(verified_payload(&jws, |_| Some(&other_point[..])).is_none());
        assert!(verified_payload(&jws, |_| None).is_none());
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"b"}"#);
        let swapped = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(verified_payload(&swapped, known).is_none());
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[0] ^= 1;
        let bent = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert!(verified_payload(&bent, known).is_none());
        assert!(verified_payload(&format!("{jws}.x"), known).is_none());
        // A header of another algorithm ("none") is refused before any key is sought.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k"}"#);
        let unsigned = format!("{none}.{}.", parts[1]);
        assert!(verified_payload(&unsigned, |_| Some(&point[..])).is_none());
    }

    #[test]
    fn a_point_of_the_wrong_shape_is_refused() {
        assert!(PublicJwk::of(&[4u8; 64]).is_err());
        assert!(PublicJwk::of(&[2u8; 65]).is_err());
        assert!(SigningKey::from_pkcs8(b"not a key").is_err());
    }
}
