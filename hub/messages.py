"""What the hub writes for people to read: the notes of automatic steps in an order's trail,
the lines of an incident's timeline, and what a citizen's rating link answers.

Notices themselves (``DispatchNotice``, webhooks) are structured and carry a reason code;
their transport is :mod:`hub.notify`.
"""

from __future__ import annotations

from hub.workflow import ACTION_NAMES, STATE_NAMES

# opening and automatic steps
EMERGENCY = "红色紧急工单：自动跳过排队，全员同时通知"
AUTO_SCREEN = "按路由规则自动筛选"
AUTO_DISPATCH = "按路由规则自动派单"
RATED_SATISFIED = "群众满意，结案"
RATED_UNSATISFIED = "群众不满意，重新派单"

# deadlines (督办)
LATE_ACCEPT_REASSIGN = "超时未接单，改派值班备岗"
LATE_ACCEPT_ESCALATE = "超时未接单，自动提级"
LATE_ACCEPT_AT_TOP = "区级件超时未接单，督办"
LATE_HANDLE = "超时未办结，提级督办"
ACK_TIMEOUT_ESCALATE = "特急事件超时未确认，自动提级"
ACK_TIMEOUT_SUPERVISE = "特急事件超时未确认，督办"
RATING_WINDOW_OVER = "评价期满未评价，自动结案"
_LATE_STEP = {"reported": "跟单", "tracked": "筛选", "screened": "派单"}

# false alarms
MANUAL_SUPPRESSION = "手动屏蔽"

# the citizen's rating link
RATING_LINK_INVALID = "评价链接无效或已失效"


def opened(screening: bool) -> str:
    """The note of a new order."""
    return "新工单" + ("（待筛选：无法定位网格）" if screening else "")


def severity_raised(old: str, new: str) -> str:
    """The note of an order whose incident became more severe."""
    return f"级别提升：{old}→{new}"


def late_before_dispatch(state: str) -> str:
    """The note of an order not tracked, screened or dispatched in time."""
    return f"超时未{_LATE_STEP[state]}，督办提醒"


def timeline_line(action: str, frm: str, to: str, note: str) -> str:
    """An order's step as a line of its incident's timeline."""
    return (
        f"{ACTION_NAMES.get(action, action)}：{STATE_NAMES.get(frm, frm)}→{STATE_NAMES.get(to, to)}"
        + (f"（{note}）" if note else "")
    )


def false_alarm_rate(false: int, total: int, rate: float) -> str:
    """Why a source was suppressed automatically."""
    return f"误报率 {false}/{total} ≥ {rate:.0%}"


def cannot_rate_yet(step: str) -> str:
    """The rating link of an order that is not verified yet."""
    return f"此工单当前为「{step}」，暂不能评价（核查通过后才能评价）"
