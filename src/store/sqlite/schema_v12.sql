-- 契約保証予約 (入札ボンド): each reservation's bid and the day it lapses, and the 契約保証
-- that used it. Its state is the certificate's status: valid (open), fulfilled (履行済,
-- used by `used_by`), lapsed (失効, by the daily job after `lapses_on`).
CREATE TABLE reservations (
    number    TEXT NOT NULL PRIMARY KEY REFERENCES certificates (number),
    bid_date  TEXT NOT NULL,
    lapses_on TEXT NOT NULL,
    used_by   TEXT REFERENCES certificates (number),
    closed_at TEXT
);
CREATE INDEX reservations_by_lapse ON reservations (lapses_on) WHERE closed_at IS NULL;
