-- resend marks an add made by trigger generate: it re-sends a record that
-- existed already and may have been sent before, so a delete after it is
-- sent as a delete (C then D is D), where an add a load captured, for a
-- record the partner never had, is cancelled together with the delete
-- (trigger.CancelAdds, trigger.Unclaim). It means something only while
-- capture is 'A'; a trigger folded into C or D keeps whatever it had.
-- Triggers made before this version, and by a process of an older version
-- still running, have 0: their adds cancel as they did.
ALTER TABLE triggers ADD COLUMN resend INTEGER NOT NULL DEFAULT 0 CHECK (resend = 0 OR resend = 1);
