"""Warning before images go to a model that cannot see them.

A text-only model would get a note in place of each image and answer as if it saw
nothing, so the user hears it twice before that happens: a notice under the composer as
soon as an image is attached (or another model is chosen with images attached), and a
question when Send is pressed. Whether a model sees images comes from the registry (the
Settings switch, the server's report, a refusal remembered, the embedded model's nature);
the server is asked when an image is attached, so its answer is there for Send.
"""

from __future__ import annotations

from collections.abc import Callable

from chatdesk.domain import Session
from chatdesk.providers.base import Provider
from chatdesk.providers.registry import ImageSupport, ProviderRegistry
from chatdesk.ui.async_tasks import TaskSet
from chatdesk.ui.composer import Composer

Confirm = Callable[[str, str], bool]

TEXT_ONLY_TITLE = "This model cannot see images"


def text_only_notice(support: ImageSupport) -> str:
    """The composer's notice for attached images that a text-only model would not see."""
    return (
        f"This chat's model reads text only ({support.source}): attached images would be "
        f"left out. {_what_to_do(support)}"
    )


def _what_to_do(support: ImageSupport) -> str:
    if not support.settable:
        return "Choose a model that sees images above."
    return "Choose a model that sees images above, or change this one in Settings → Models."


class ImageInputCheck:
    """Asks the model's server about images early, and the user before sending them blind."""

    def __init__(
        self, registry: ProviderRegistry, tasks: TaskSet, confirm: Confirm, composer: Composer
    ) -> None:
        """``confirm(title, text)`` asks the user; notices go under ``composer``."""
        self._registry = registry
        self._tasks = tasks
        self._confirm = confirm
        self._composer = composer
        self._notice: str | None = None  # the notice this check put up, while it shows

    def attachments_changed(self, session: Session | None) -> None:
        """Images were attached or removed in ``session``'s composer: learn, then tell."""
        if session is not None:
            self._check(*self._registry.resolve(session))

    def model_chosen(self, provider_id: str | None, model: str | None) -> None:
        """Another model was chosen for the chat: tell again about the attached images."""
        self._check(*self._registry.resolve_choice(provider_id, model))

    def _check(self, provider: Provider, model: str | None) -> None:
        if not self._composer.attachments():
            self._withdraw()
            return
        self._tasks.start(self._learn_and_tell(provider, model), name="image-check")

    async def _learn_and_tell(self, provider: Provider, model: str | None) -> None:
        support = await self._registry.learn_image_support(provider, model)
        if support.sees is False and self._composer.attachments():
            self._notice = text_only_notice(support)
            self._composer.show_notice(self._notice)
        else:
            self._withdraw()

    def _withdraw(self) -> None:
        if self._notice is not None and self._composer.notice.text() == self._notice:
            self._composer.show_notice("")
        self._notice = None

    def may_send(self, session: Session | None) -> bool:
        """False when the user, told that the model cannot see images, says not to send.

        Asked before sending, not after: the model would silently get a note instead.
        """
        if session is None or not self._composer.attachments():
            return True
        support = self._registry.image_support(*self._registry.resolve(session))
        if support.sees is not False:
            return True
        return self._confirm(
            TEXT_ONLY_TITLE,
            f"The chosen model reads text only ({support.source}), so the attached images "
            f"would be left out. Send the text anyway?\n\n{_what_to_do(support)}",
        )
