//! The servers under test, each in its own process, and what `/proc` tells of them.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, stopped when dropped.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident anonymous memory now (the heap and stacks), in bytes. Pages of the
    /// SQLite file that the server maps are resident too, but they are the kernel's
    /// page cache, shared and given back under pressure: counting them would charge
    /// the caches for every database page a test happened to read.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port, released for the server to take.
pub(crate) fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// The bare server: this very program, started again with `BARE_SERVER` set.
pub(crate) fn start_bare(cert: &Path, key: &Path, log: &Path) -> Server {
    let address = free_address();
    let mut command = Command::new(std::env::current_exe().expect("this program"));
    command
        .env(crate::bare::ADDRESS, address.to_string())
        .env(crate::bare::CERT, cert)
        .env(crate::bare::KEY, key);
    start(command, address, log)
}

/// `portcullis serve` with `settings` as `PORTCULLIS__…` variables.
pub(crate) fn start_portcullis(settings: &[(&str, String)], log: &Path) -> Server {
    let address = free_address();
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .arg("serve")
        .env("PORTCULLIS__SERVER__LISTEN", address.to_string())
        .env("PORTCULLIS__METRICS__LISTEN", "");
    for (key, value) in settings {
        command.env(format!("PORTCULLIS__{key}"), value);
    }
    start(command, address, log)
}

fn start(mut command: Command, address: SocketAddr, log: &Path) -> Server {
    let log = std::fs::File::create(log).expect("a log file");
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .expect("the server starts");
    let server = Server { child, address };
    // Start-up may reconcile thousands of tenant files; give it time, but not forever.
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server at {address} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// User plus system CPU time of process `pid` so far, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5); the rest starts at field 3.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture a server runs on.
    100.0
}
