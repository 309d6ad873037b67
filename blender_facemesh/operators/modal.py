"""The plumbing a long operator shares: a modal timer, Blender's progress bar and a status line."""


class ModalProgress:
    """Mixed into an Operator that runs modal: ``_begin_modal`` after ``modal_handler_add``,
    ``_progress`` on each timer event, ``_end_modal`` however it ends."""

    _timer = None

    def _begin_modal(self, context) -> None:
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)

    def _status(self, context, text) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(text)

    def _progress(self, context, fraction: float, text: str) -> None:
        context.window_manager.progress_update(int(fraction * 100))
        self._status(context, text)

    def _end_modal(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        self._status(context, None)
