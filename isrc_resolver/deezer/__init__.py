"""Deezer: one track per ISRC, no token, no daily quota.

:class:`.client.DeezerClient` asks ``GET {deezer_api_url}/track/isrc:{ISRC}`` through its
own rate gate and retry policy; :mod:`.answer` checks each answer before it is used or
cached and turns it into a :class:`~isrc_resolver.listing.Listing`. :mod:`.spec` is what
the rest of the code knows of it. (This face imports nothing: the settings read the spec
without loading the client.)
"""
