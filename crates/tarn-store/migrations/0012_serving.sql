-- Model serving endpoints. `config` is the live configuration and
-- `pending_config` the one being deployed (both JSON as tarn-serving writes
-- them); `config_update` is the API's NOT_UPDATING / IN_PROGRESS /
-- UPDATE_FAILED, with `update_message` saying why an update failed.
-- `settings` keeps what the endpoint was created with besides its config
-- (description, AI Gateway, rate limits, ...), `tags` its tags.
CREATE TABLE serving_endpoints (
    name                   TEXT    PRIMARY KEY,
    id                     TEXT    NOT NULL UNIQUE,
    creator                TEXT    NOT NULL,
    creation_timestamp     INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    config                 TEXT,
    pending_config         TEXT,
    config_update          TEXT    NOT NULL,
    update_message         TEXT,
    settings               TEXT    NOT NULL DEFAULT '{}',
    tags                   TEXT    NOT NULL DEFAULT '[]'
);
