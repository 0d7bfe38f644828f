"""Phone numbers: libphonenumber's own example number for every region, mobile and fixed line."""

from __future__ import annotations

from collections.abc import Iterator

from .model import FREE_TEXT, KEY_VALUE, Value, sub_rng

# What an app glues in front of a number in logs and ids (`otp:+4915...`).
PREFIXES = ("otp:", "sms:", "tel:", "wa:", "phone=", "to=", "msisdn:")


def values(seed: int) -> Iterator[Value]:
    """E.164, international and national forms of each example number, and one prefixed form per region."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    rng = sub_rng(seed, "phones")
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind_of_line in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind_of_line)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            yield Value("phone_e164", e164, region, "phone", "libphonenumber")
            yield Value("phone_intl", intl, region, "phone", "libphonenumber")
            # A national number means nothing without its label (and the region it was typed in).
            yield Value("phone_national", national, region, "phone", "libphonenumber", weak=True)
            if kind_of_line == PhoneNumberType.MOBILE:
                prefix = rng.choice(PREFIXES)
                yield Value(
                    "phone_prefixed",
                    e164,
                    region,
                    "phone",
                    "libphonenumber",
                    context=prefix + e164,
                    placements=(FREE_TEXT, KEY_VALUE),
                )
