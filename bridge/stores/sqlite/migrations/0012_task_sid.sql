-- The TaskRouter task routing the conversation, once the bridge learnt it (from the
-- workspace's events, or looked up once by the conversation's SID): Twilio's task lists
-- leave the attributes out, so a place in the queue is found by the task's SID.
ALTER TABLE conversations ADD COLUMN task_sid TEXT;
