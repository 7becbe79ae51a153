-- pbxctl: NB 宁波's slice of the self-service data, from the province.
-- Rendered by `pbxctl provision render`; run on nb-lss's database after
-- `pbxctl db migrate` (the tables must exist; they fill at the first sync). It cannot
-- be re-run as is (CREATE SUBSCRIPTION has no IF NOT EXISTS and creates the slot
-- outside any transaction): `pbxctl db replicas subscribe` skips an existing one.
CREATE SUBSCRIPTION "pbxctl_selfservice_nb"
    CONNECTION 'host=127.201.1.10,127.201.2.10 port=5432,5432 dbname=pbxctl user=pbxctl_repl_nb passfile=/etc/pbxctl/replication.pgpass application_name=pbxctl_selfservice_nb connect_timeout=5'
    PUBLICATION "pbxctl_selfservice_nb"
    WITH (slot_name = 'pbxctl_selfservice_nb', copy_data = true);
