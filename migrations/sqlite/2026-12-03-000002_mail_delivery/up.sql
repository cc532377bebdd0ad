-- Delivery of the mail outbox over SMTP: attempts, backoff, the lease of the process that
-- claimed a row, the outcome, and the row's Message-ID (set when first claimed, the same on
-- every attempt).
ALTER TABLE mail_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE mail_outbox ADD COLUMN claimed_until TIMESTAMP;
ALTER TABLE mail_outbox ADD COLUMN claim_token TEXT;
ALTER TABLE mail_outbox ADD COLUMN last_error TEXT;
ALTER TABLE mail_outbox ADD COLUMN failed_at TIMESTAMP;
ALTER TABLE mail_outbox ADD COLUMN message_id TEXT;
-- The rows still to deliver, oldest first.
CREATE INDEX mail_outbox_undelivered ON mail_outbox(id) WHERE sent_at IS NULL AND failed_at IS NULL;
