-- Custom roles store catalogue names (area:view|edit). The names of earlier releases are
-- still read as aliases; this rewrites them so stored roles show what they mean.
UPDATE roles SET permissions =
  REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(permissions,
    '"account:read"', '"account:view"'),
    '"users:read"', '"users:view","groups:view","roles:view"'),
    '"licenses:manage"', '"licenses:edit","licenses:view"'),
    '"sub_accounts:manage"', '"sub_accounts:edit","sub_accounts:view"'),
    '"groups:manage"', '"groups:edit","groups:view"'),
    '"roles:manage"', '"roles:edit","roles:view"'),
    '"phone:manage"', '"phone_numbers:edit","phone_numbers:view","phone_sites:edit","phone_sites:view","phone_users:edit","phone_users:view"'),
    '"mapping:manage"', '"mapping:edit","mapping:view"'),
    '"sso:manage"', '"sso:edit","sso:view"'),
    '"tokens:manage"', '"tokens:edit","tokens:view"'),
    '"audit:read"', '"audit:view"');
