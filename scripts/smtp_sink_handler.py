"""The SMTP sink's handler (scripts/smtp-sink.sh): stores every message in a Maildir, and
refuses for good (550) every recipient at reject.example, quoting the address the way real
relays do, so tests can check that a permanent refusal is not retried and that the address
never reaches a log or a task."""

from aiosmtpd.handlers import Mailbox


class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@reject.example"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: user unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"
