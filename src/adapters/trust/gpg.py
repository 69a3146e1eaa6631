"""Simple-signing signatures verified by GnuPG (Debian's `gpg`), as containers/image's gpgme mechanism does.

Each verification imports only the policy's keys into a fresh, private GNUPGHOME, so no other key on the
node can vouch for an image, then runs `gpg --decrypt` with `--status-fd` and trusts nothing but the
machine-readable status: exactly one VALIDSIG by an imported key and no BADSIG/ERRSIG/EXPSIG/EXPKEYSIG/
REVKEYSIG. `--no-autostart` keeps gpg-agent and dirmngr out of it (public-key work needs neither), and the
temporary home is removed afterwards.
"""

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from adapters.process.runner import CommandResult, run
from domain.errors import DeadlineExceeded, FailedPrecondition
from ports.signatures import InvalidSignature

GPG = "/usr/bin/gpg"
_REFUSING = ("BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY")
MAX_PAYLOAD_BYTES = 4 << 20


class GpgVerifier:
    def __init__(self, gpg: str = GPG, timeout: float = 30.0) -> None:
        self._gpg = gpg
        self._timeout = timeout

    def verify_simple_signing(self, public_keys: Sequence[bytes], signature: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="pycrio-gpg-") as home:
            os.chmod(home, 0o700)
            trusted = self._import(home, public_keys)
            signature_file = Path(home, "signature")
            signature_file.write_bytes(signature)
            payload_file = Path(home, "payload")
            result = self._gpg_run(
                home,
                [
                    "--trust-model",
                    "always",
                    "--status-fd",
                    "1",
                    "--output",
                    str(payload_file),
                    "--decrypt",
                    str(signature_file),
                ],
            )
            status = [line.split() for line in result.stdout.decode(errors="replace").splitlines()]
            status = [words[1:] for words in status if len(words) > 1 and words[0] == "[GNUPG:]"]
            refused = [words[0] for words in status if words[0] in _REFUSING]
            valid = [words for words in status if words[0] == "VALIDSIG"]
            if refused or result.returncode != 0 or len(valid) != 1:
                detail = (
                    ", ".join(refused) or result.stderr.decode(errors="replace").strip().splitlines()[-1:]
                )
                raise InvalidSignature(f"GPG signature verification failed: {detail or 'no valid signature'}")
            signer, primary = valid[0][1], valid[0][-1]
            if signer not in trusted and primary not in trusted:
                raise InvalidSignature(f"signature by key {signer} is not accepted")
            if not payload_file.is_file() or payload_file.stat().st_size > MAX_PAYLOAD_BYTES:
                raise InvalidSignature("the signed payload is missing or too large")
            return payload_file.read_bytes()

    def _import(self, home: str, public_keys: Sequence[bytes]) -> set[str]:
        for number, key in enumerate(public_keys, 1):
            result = self._gpg_run(home, ["--import"], key)
            if result.returncode != 0:
                detail = result.stderr.decode(errors="replace").strip()
                raise InvalidSignature(f"policy key {number} cannot be imported: {detail}")
        listed = self._gpg_run(home, ["--with-colons", "--fixed-list-mode", "--list-keys"])
        fingerprints = {
            fields[9]
            for fields in (line.split(":") for line in listed.stdout.decode(errors="replace").splitlines())
            if fields[0] == "fpr" and len(fields) > 9
        }
        if not fingerprints:
            raise InvalidSignature("no public keys imported")
        return fingerprints

    def _gpg_run(self, home: str, args: list[str], input: bytes | None = None) -> CommandResult:
        try:
            return run(
                [self._gpg, "--homedir", home, "--batch", "--no-tty", "--no-autostart", "--quiet", *args],
                timeout=self._timeout,
                input=input,
                check=False,
            )
        except DeadlineExceeded as err:
            raise InvalidSignature(f"gpg: {err}") from None
        except OSError as err:
            # Not the signature's fault: the node cannot verify simple signing at all.
            raise FailedPrecondition(
                f"cannot run {self._gpg} to verify signatures: {err.strerror or err}"
            ) from None
