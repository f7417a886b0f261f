"""Small pieces every stage shares: where data lives, and how stage reports are written."""
