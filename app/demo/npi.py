"""National Provider Identifier (NPI) check digits.

An NPI is 10 digits whose last digit is a Luhn check digit computed over the card-issuer prefix
`80840` followed by the first 9 digits (CMS, "Requirements for NPI check digit"). Every NPI the
demo payer invents passes this check; the NPIs copied from the Inferno fixtures are kept as they
are, even where they fail it.
"""

from __future__ import annotations

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
_ISSUER_PREFIX = "80840"


def npi_check_digit(first_nine: str) -> str:
    """The check digit for the first 9 digits of an NPI."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError(f"an NPI base is 9 digits, not {first_nine!r}")
    total = 0
    for position, char in enumerate(reversed(_ISSUER_PREFIX + first_nine)):
        digit = int(char)
        if position % 2 == 0:  # doubled: the rightmost digit of the payload, then every other one
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid_npi(npi: str) -> bool:
    """True when `npi` is 10 digits with a correct Luhn check digit."""
    return len(npi) == 10 and npi.isdigit() and npi_check_digit(npi[:9]) == npi[9]
