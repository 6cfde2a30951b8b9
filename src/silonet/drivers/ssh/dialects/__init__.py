"""One folder per vendor CLI; ``dialect.dialects()`` finds them."""
