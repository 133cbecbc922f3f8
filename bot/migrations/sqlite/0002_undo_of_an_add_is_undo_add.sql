-- 1 -> 2: the undo of an add was recorded as "delete"; that name now belongs to no button, so a real delete
-- subcommand can never be mistaken for an undo (history, undo and the audit channel read "undo_add").
UPDATE changes SET action = 'undo_add' WHERE action = 'delete' AND undo_of IS NOT NULL;
