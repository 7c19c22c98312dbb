"""Domain events other services react to, so accounts need not know about referrals or credits.

Receivers run synchronously inside the sender's transaction: a receiver that raises ApiError aborts
the whole operation (for example an unknown referral code aborts the sign-up, leaving no user row).
"""
from blinker import Namespace

_events = Namespace()

# sender: the User, kwargs: referral_code (str | None). Sent after the user row is flushed, before commit.
user_registered = _events.signal("user-registered")
# sender: the User. Sent when the email address is verified, before commit.
user_verified = _events.signal("user-verified")
# sender: the User, kwargs: kind ("image" | "audio" | "video"). Sent when a user's generation succeeds.
generation_succeeded = _events.signal("generation-succeeded")
# sender: the User, kwargs: transaction (the purchase entry). Sent when a purchase is credited.
purchase_completed = _events.signal("purchase-completed")
