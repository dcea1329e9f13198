-- Who may change a tenant's resource rules: the tenant file, when it has
-- [[resources]], or the admin API. The tenant's own `source` says who owns its other
-- settings. Rules a file tenant holds are taken to be the file's until the next start
-- reads the files again and says for sure.
-- Keep in lockstep with migrations/postgres/0009_ownership.sql.

ALTER TABLE tenants ADD COLUMN resources_source TEXT NOT NULL DEFAULT 'api';
UPDATE tenants SET resources_source = 'file' WHERE source = 'file' AND resources IS NOT NULL;
