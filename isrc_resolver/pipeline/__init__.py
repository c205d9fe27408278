"""The stages of a run: plan (what to ask), fetch (the searches, in rounds, by workers)
and enrich (album details, audio features). The Resolver wires them."""
