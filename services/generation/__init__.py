"""The generation service: paid AI generation jobs across providers."""
