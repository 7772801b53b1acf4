"""Is a request from Twilio? `urls` rebuilds the URL Twilio signed, `signature` computes its HMAC fast."""

from .signature import SignatureValidator
from .urls import callback_url

SIGNATURE_HEADER = b"x-twilio-signature"

__all__ = ["SIGNATURE_HEADER", "SignatureValidator", "callback_url"]
