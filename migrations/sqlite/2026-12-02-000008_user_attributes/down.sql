DROP TABLE user_attributes;
