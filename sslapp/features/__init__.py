"""Features: every embedding the app can use, computed and chosen in one place."""
