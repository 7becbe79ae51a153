-- pbxctl: publications of the self-service data, one per prefecture.
-- Rendered by `pbxctl provision render`; run on the province database.
-- Each role's password: ALTER ROLE … PASSWORD, by the operator (never rendered).

-- HZ 杭州: its IVR at hz-lss (127.211.1.11, 127.211.2.11)
DO $pbxctl$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pbxctl_repl_hz') THEN
        CREATE ROLE "pbxctl_repl_hz" LOGIN REPLICATION;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'pbxctl_selfservice_hz') THEN
        ALTER PUBLICATION "pbxctl_selfservice_hz" SET TABLE accounts WHERE (prefecture = 'HZ'), bills WHERE (prefecture = 'HZ'), outages WHERE (prefecture = 'HZ');
    ELSE
        CREATE PUBLICATION "pbxctl_selfservice_hz" FOR TABLE accounts WHERE (prefecture = 'HZ'), bills WHERE (prefecture = 'HZ'), outages WHERE (prefecture = 'HZ');
    END IF;
END $pbxctl$;
GRANT SELECT ON accounts, bills, outages TO "pbxctl_repl_hz";

-- NB 宁波: its IVR at nb-lss (127.212.1.11, 127.212.2.11)
DO $pbxctl$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pbxctl_repl_nb') THEN
        CREATE ROLE "pbxctl_repl_nb" LOGIN REPLICATION;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'pbxctl_selfservice_nb') THEN
        ALTER PUBLICATION "pbxctl_selfservice_nb" SET TABLE accounts WHERE (prefecture = 'NB'), bills WHERE (prefecture = 'NB'), outages WHERE (prefecture = 'NB');
    ELSE
        CREATE PUBLICATION "pbxctl_selfservice_nb" FOR TABLE accounts WHERE (prefecture = 'NB'), bills WHERE (prefecture = 'NB'), outages WHERE (prefecture = 'NB');
    END IF;
END $pbxctl$;
GRANT SELECT ON accounts, bills, outages TO "pbxctl_repl_nb";
