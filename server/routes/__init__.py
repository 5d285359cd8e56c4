"""The HTTP routes, one router per concern: episodes, media, viewers, operations, pages."""
