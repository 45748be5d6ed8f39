"""What a new password must be: long enough and hard to guess.

Every place a password is set (user creation in the pages, the JSON API and
``sdi user create``, a change, an administrator's reset) calls
:func:`check_new_password`, which raises ``BadInputError`` with a sentence
saying why. Guessability is zxcvbn's estimate (dictionaries of common
passwords, names and words, keyboard patterns, repeats, sequences, dates), with
the user's own e-mail as a word to avoid.
"""

from __future__ import annotations

import re
import threading

from sdi.errors import BadInputError

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "MIN_SCORE", "check_new_password"]

MIN_LENGTH = 10
MAX_LENGTH = 500
#: zxcvbn's score 3: "safely unguessable", about 10^8 guesses or more.
MIN_SCORE = 3
# zxcvbn refuses longer input; a longer password is judged by its start.
_JUDGED = 72
# zxcvbn keeps the user's words in a module-level dictionary during a call.
_LOCK = threading.Lock()


def _email_words(email: str) -> list[str]:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    words = [email, local, *re.split(r"[._+\-]", local), *domain.split(".")]
    return [w for w in words if len(w) >= 3]


def check_new_password(password: str, *, email: str) -> None:
    """Refuse (``BadInputError``, saying why) a password too short or too guessable.

    ``email`` is the account's: a password made of little but its parts (the
    address, its local part, the domain's labels) is refused, and those parts
    count as easy words inside a longer one.
    """
    if len(password) < MIN_LENGTH:
        raise BadInputError(f"Passwords need at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise BadInputError(f"Passwords take at most {MAX_LENGTH} characters.")
    words = _email_words(email)
    rest = password.lower()
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word, "")
    if len(re.sub(r"[\W_]", "", rest)) < 4:  # little but the e-mail's parts
        raise BadInputError("The password must not be your e-mail address.")
    # Imported here: its dictionaries take ~12 MB, which the serving
    # processes need not hold until somebody sets a password.
    from zxcvbn import zxcvbn

    with _LOCK:
        result = zxcvbn(password[:_JUDGED], user_inputs=words)
    if int(result["score"]) >= MIN_SCORE:
        return
    feedback = result.get("feedback") or {}
    reasons = [str(feedback.get("warning") or "").strip()]
    reasons += [str(s).strip() for s in feedback.get("suggestions") or []]
    why = " ".join(r if r.endswith(".") else f"{r}." for r in reasons if r)
    raise BadInputError(
        "This password is too easy to guess: "
        + (why or "try a few unrelated words, or a longer passphrase.")
    )
