"""What every emulated Twilio product shares: SIDs and times, errors as Twilio answers
them, paging, Basic authentication with faults, and signed webhook delivery."""
