-- Quality monitors, one per table (`info` is the API's MonitorInfo as
-- tarn-monitor writes it), and their refreshes.
CREATE TABLE quality_monitors (
    table_name   TEXT    PRIMARY KEY,
    info         TEXT    NOT NULL,
    created_time INTEGER NOT NULL
);

CREATE TABLE monitor_refreshes (
    table_name    TEXT    NOT NULL,
    refresh_id    INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    trigger       TEXT    NOT NULL,
    start_time_ms INTEGER NOT NULL,
    end_time_ms   INTEGER,
    message       TEXT,
    PRIMARY KEY (table_name, refresh_id)
);
