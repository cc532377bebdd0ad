-- Platform-wide settings every process and CLI verb shares, e.g. the public URL `serve`
-- runs under (so CLI output and mails link to the server people actually reach).
CREATE TABLE platform_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
