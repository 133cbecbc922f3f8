"""leadbot's timing constants, each defined once. Slack's clock rules them: 3 s to answer any request."""

from __future__ import annotations

#: A form submission must be answered within 3 s: the permission check and the field pre-checks share this budget
#: (counted from the submission's arrival); pre-checks that do not fit are left to the command itself.
FORM_CHECK_BUDGET_S = 2.4
#: A denial is recorded before its ack; a busy audit file (another process writing) may not delay the ack longer.
DENIAL_RECORD_BUDGET_S = 0.5
#: How long an "apply anyway?" question stays answerable.
CONFIRM_TTL_S = 15 * 60
#: The longest a write can be under way: babelforce's deadline per call is 20 s and reading a lead back after a lost
#: answer 5 s more. A pending audit record older than this is an interrupted write (a crash), not one in flight:
#: undo no longer waits for it, and the start-up sweep marks it unknown.
WRITE_IN_FLIGHT_MAX_S = 60.0
#: Slack's answer to a select's options request must come within 3 s: the rest is for the network both ways.
OPTIONS_BUDGET_S = 2.0
#: Work after an ack waits while requests await theirs and, in a burst, this long after the last ack (bot.ack_first):
#: a burst sends its next request about 1 ms after an ack, so 10 ms bridges the gap.
ACK_FIRST_QUIET_S = 0.010
#: ... but never longer than this per step, so a flood that never pauses still gets its answers.
ACK_FIRST_MAX_WAIT_S = 0.5
#: ... and one piece of work (a command's answer, with the tasks it starts) never more than this in all: the most that
#: taking turns can add to an answer, however long a flood of requests lasts.
ACK_FIRST_WORK_MAX_WAIT_S = 1.0
#: Two answers closer than this make a burst; after a lone answer, work goes on without the quiet period.
ACK_FIRST_BURST_GAP_S = 0.050
#: A reply posted to a response_url gives up after this long (slack_sdk's own webhook default).
REPLY_POST_TIMEOUT_S = 30.0
