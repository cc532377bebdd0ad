DROP TABLE sessions; DROP TABLE saml_replay; DROP TABLE saml_requests; DROP TABLE sso_certificates;
DROP TABLE sso_configs; DROP TABLE mail_outbox; DROP TABLE audit_log; DROP TABLE invitations;
DROP TABLE api_tokens; DROP TABLE mapping_configs; DROP TABLE membership_events;
DROP TABLE group_members; DROP TABLE groups; DROP TABLE desk_phones; DROP TABLE phone_numbers;
DROP TABLE user_emails; DROP TABLE user_phones; DROP TABLE users; DROP TABLE phone_sites; DROP TABLE roles;
DROP TABLE license_pools; DROP TABLE account_domains; DROP TABLE accounts;
