-- What the user chose when no agent had accepted in time (ASSIGNMENT_TIMEOUT_SECONDS):
-- keep_waiting (asked again after another timeout), leave_message (the task stays; the
-- reply is handed out whenever they come back) or continue_with_assistant (the task is
-- canceled and the conversation closed). When they chose, so keep_waiting restarts the clock.
ALTER TABLE conversations ADD COLUMN choice TEXT
    CHECK (choice IS NULL OR choice IN ('keep_waiting', 'leave_message', 'continue_with_assistant'));
ALTER TABLE conversations ADD COLUMN choice_at TEXT;
