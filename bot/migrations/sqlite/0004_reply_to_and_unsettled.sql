-- 3 -> 4: where to tell the user how an unconfirmed write ended (bot.settler): the command's response_url while
-- Slack accepts it, else a direct message; and the settler's look for unsettled attempts by outcome.
ALTER TABLE changes ADD COLUMN reply_to TEXT;
CREATE INDEX changes_unsettled ON changes (outcome) WHERE outcome IN ('pending', 'unknown');
