-- Routing-strategy writes: `skillsync retire` strips a retired proficiency from the routing
-- strategies that reference it, and journals each write like a profile's.
ALTER TABLE writes DROP CONSTRAINT writes_target_check;
ALTER TABLE writes ADD CONSTRAINT writes_target_check
    CHECK (target IN ('user_skills', 'user_proficiencies', 'definition', 'profile', 'strategy'));
