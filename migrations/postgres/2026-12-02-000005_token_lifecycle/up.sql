-- Tokens may expire; the last use is kept (to the minute) so stale tokens can be found.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE api_tokens ADD COLUMN last_used_at TIMESTAMP;
