"""The domain: every rule and every database access lives in these modules."""
