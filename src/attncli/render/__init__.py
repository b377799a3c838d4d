"""Renderers: they return objects (rich renderables, written paths); commands decide where they go."""
