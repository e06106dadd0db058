ALTER TABLE events ADD COLUMN status text NOT NULL DEFAULT 'scheduled';
