ALTER TABLE saml_replay DROP CONSTRAINT saml_replay_pkey;
DELETE FROM saml_replay a USING saml_replay b WHERE a.assertion_id = b.assertion_id AND a.account_id > b.account_id;
ALTER TABLE saml_replay ADD PRIMARY KEY (assertion_id);
