"""The content service: posts, the asset library, chats and lessons."""
