"""Warning before images go to a model that cannot see them.

A text-only model would get a note in place of each image and answer as if it saw
nothing, so the user hears it twice before that happens: a notice under the composer as
soon as an image is attached, and a question when Send is pressed. Whether a model sees
images comes from the registry (the Settings switch, the server's report, a refusal
remembered, the embedded model's nature); the server is asked when an image is attached,
so its answer is there by the time Send is pressed.
"""

from __future__ import annotations

from collections.abc import Callable

from chatdesk.domain import Session
from chatdesk.providers.registry import ImageSupport, ProviderRegistry
from chatdesk.ui.async_tasks import TaskSet

Confirm = Callable[[str, str], bool]

TEXT_ONLY_TITLE = "This model cannot see images"


def text_only_notice(support: ImageSupport) -> str:
    """The composer's notice for attached images that a text-only model would not see."""
    return (
        f"This chat's model reads text only ({support.source}): attached images would be "
        "left out. Choose a model that sees images above, or change it in Settings → Models."
    )


class ImageInputCheck:
    """Asks the model's server about images early, and the user before sending them blind."""

    def __init__(
        self,
        registry: ProviderRegistry,
        tasks: TaskSet,
        confirm: Confirm,
        show_notice: Callable[[str], None],
    ) -> None:
        """``confirm(title, text)`` asks the user; ``show_notice`` writes under the composer."""
        self._registry = registry
        self._tasks = tasks
        self._confirm = confirm
        self._show_notice = show_notice

    def attachments_changed(self, session: Session | None, attached: int) -> None:
        """Images were attached or removed in ``session``'s composer: learn, then tell."""
        if session is None or attached == 0:
            return
        self._tasks.start(self._learn_and_tell(session), name="image-check")

    async def _learn_and_tell(self, session: Session) -> None:
        support = await self._registry.learn_image_support(session)
        if support.sees is False:
            self._show_notice(text_only_notice(support))

    def may_send(self, session: Session | None, attached: int) -> bool:
        """False when the user, told that the model cannot see images, says not to send.

        Asked before sending, not after: the model would silently get a note instead.
        """
        if session is None or attached == 0:
            return True
        support = self._registry.image_support(*self._registry.resolve(session))
        if support.sees is not False:
            return True
        return self._confirm(
            TEXT_ONLY_TITLE,
            f"The chosen model reads text only ({support.source}), so the attached images "
            "would be left out. Send the text anyway? (Choose a model that sees images "
            "above to send them, or change the model's image setting in Settings → Models.)",
        )
