-- 2 -> 3: `/lead undo` without a number finds the user's latest change (latest_change_of) through this index,
-- walked backwards (an index on user_id also orders by rowid, the id), not by reading every row.
CREATE INDEX changes_user_id ON changes (user_id);
