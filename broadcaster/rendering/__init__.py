"""Jinja2 rendering of announcements into each channel's payload."""

from broadcaster.rendering.renderer import Renderer, bundled_templates_dir

__all__ = ["Renderer", "bundled_templates_dir"]
