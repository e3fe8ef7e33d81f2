-- The next place in the call queue is MAX(ready_at) + 1, taken every time a loop starts or
-- moves on. `escalations_state` leads with the state, so that MAX read every loop ever
-- started; this index makes it one lookup.
CREATE INDEX escalations_ready ON escalations (ready_at);
