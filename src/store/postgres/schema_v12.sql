-- As SQLite's version 12: 契約保証予約 (入札ボンド) and their bid, lapse day and use.
CREATE TABLE reservations (
    number    TEXT NOT NULL PRIMARY KEY REFERENCES certificates (number),
    bid_date  TEXT NOT NULL,
    lapses_on TEXT NOT NULL,
    used_by   TEXT REFERENCES certificates (number),
    closed_at TEXT
);
CREATE INDEX reservations_by_lapse ON reservations (lapses_on) WHERE closed_at IS NULL;
