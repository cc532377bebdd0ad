DROP INDEX mail_outbox_undelivered;
ALTER TABLE mail_outbox DROP COLUMN message_id;
ALTER TABLE mail_outbox DROP COLUMN failed_at;
ALTER TABLE mail_outbox DROP COLUMN last_error;
ALTER TABLE mail_outbox DROP COLUMN claim_token;
ALTER TABLE mail_outbox DROP COLUMN claimed_until;
ALTER TABLE mail_outbox DROP COLUMN next_attempt_at;
ALTER TABLE mail_outbox DROP COLUMN attempts;
