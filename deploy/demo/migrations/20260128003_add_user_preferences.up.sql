CREATE TABLE IF NOT EXISTS user_preferences (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES users(id),
    theme text DEFAULT 'light'
);

ALTER TABLE users ADD COLUMN status text DEFAULT 'active';
