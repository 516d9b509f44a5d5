"""Pure parsers and serializers: bytes in, frozen dataclass out, or FormatError.

House rule 1: nothing here touches the network, the clock, cryptography or policy.
"""
