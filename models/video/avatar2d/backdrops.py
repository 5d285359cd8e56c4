"""``Backdrops``: the studio's static pictures for one look, built once and kept.

Both looks sit their hosts in the same studio (wall, shelves, desk, name plates, title
banner, speaker ring, caption box); the cartoon look also has microphones and forearms
that stand in front of its hosts, the portrait look does not. Pictures are kept in a
``LayerCache`` in memory and the studio also on disk (studio.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.protocols import Quality, SceneInfo
from models.video.avatar2d.cache import LayerCache
from models.video.avatar2d.camera import WIDE, Camera
from models.video.avatar2d.cards import make_title
from models.video.avatar2d.hosts import HostStyle
from models.video.avatar2d.layout import canvas_key
from models.video.avatar2d.occluders import MicLayers, make_mics
from models.video.avatar2d.primitives import RGB
from models.video.avatar2d.stage import make_base, make_view_base, studio_view
from models.video.avatar2d.studio import State, make_studio, stored_studio, studio_look
from models.video.avatar2d.text import Text


class Backdrops:
    """The studio, episode bases, microphones and title cards of one look, per tier and camera; thread-safe.

    ``furniture`` adds the microphones and forearms (the cartoon look's occluders).
    """

    def __init__(self, bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle], text: Text, layers: LayerCache,
                 studio_cache: str, furniture: bool = True) -> None:
        self.bg_top, self.bg_bottom = bg_top, bg_bottom
        self.styles = styles
        self.text = text
        self.layers = layers
        self.studio_cache = studio_cache
        self.furniture = furniture

    def studio(self, quality: Quality, state: State) -> np.ndarray:
        """The studio lit for ``state``: from memory, the disk cache, or built."""
        def make() -> np.ndarray:
            return make_studio(quality, state, self.bg_top, self.bg_bottom, self.styles)

        def load() -> np.ndarray:
            look = studio_look(self.bg_top, self.bg_bottom, self.styles, quality, state)
            return stored_studio(self.studio_cache, look, make)
        return self.layers.get(("studio", canvas_key(quality), state), load)

    def view(self, quality: Quality, state: State, camera: Camera) -> np.ndarray:
        """The studio lit for ``state`` as ``camera`` sees it (stage.studio_view); not to be drawn on."""
        return self.layers.get(("view", canvas_key(quality), state, camera),
                               lambda: studio_view(self.studio(quality, state), state, self.styles, camera))

    def mics(self, quality: Quality, camera: Camera = WIDE) -> MicLayers | None:
        """The tier's microphone layers and occluder weights through ``camera``; None without furniture."""
        if not self.furniture:
            return None
        return self.layers.get(("mics", canvas_key(quality), camera), lambda: make_mics(quality, self.styles, camera))

    def base(self, quality: Quality, state: State, scene: SceneInfo, box: bool, camera: Camera = WIDE) -> np.ndarray:
        """The episode's picture without hosts for ``state`` ("idle", 0 or 1) through ``camera``;
        not to be drawn on. Through a closer camera than the two-shot's it holds only the scene
        (stage.make_view_base): ``scene`` and ``box`` then go in the overlay (overlay.py)."""
        if not camera.wide:
            return self.layers.get(("view bg", canvas_key(quality), state, self.furniture, camera),
                                   lambda: make_view_base(self.view(quality, state, camera),
                                                          self.mics(quality, camera), state, self.styles, camera))
        key = ("bg", canvas_key(quality), state, scene.title, tuple(scene.hosts), bool(box), self.furniture)

        def make() -> np.ndarray:
            return make_base(self.studio(quality, state), self.mics(quality), state, scene, box, self.styles,
                             self.text)
        return self.layers.get(key, make)

    def title(self, scene: SceneInfo, quality: Quality) -> np.ndarray:
        """The title card without its equaliser; not to be drawn on."""
        key = ("title", canvas_key(quality), scene.title, tuple(scene.hosts))
        return self.layers.get(key, lambda: make_title(scene, quality, self.bg_top, self.bg_bottom, self.styles,
                                                       self.text))
