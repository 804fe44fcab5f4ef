"""Every TUI action, declared once: key bindings (with ids for keymaps),
the footer, the help screen and the command palette all come from here.

A user remaps keys in the config file by binding id::

    [keymap]
    new-conversation = "ctrl+t"
    stop = "escape,ctrl+g"
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    id: str
    keys: str
    action: str
    label: str
    help: str
    show: bool = True
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(self.keys, self.action, self.label, show=self.show, priority=self.priority, id=self.id,
                       tooltip=self.help)


# Application-wide actions (App.BINDINGS). Keys avoid those the text
# inputs (TextArea) already use: ctrl+a/c/d/e/k/u/v/w/x/y/z, f6, f7. The
# tab keys stay out of the footer (the tabs are on screen, F1 lists every
# key): on 80 columns it has room for the focused pane's own keys first.
APP_ACTIONS: tuple[Action, ...] = (
    Action("help", "f1", "help", "Help", "Show every key binding"),
    Action("show-chat", "f2", "show_tab('chat')", "Chat", "Show the chat pane", show=False),
    Action("show-summarize", "f3", "show_tab('summarize')", "Summarize", "Show the summarize pane", show=False),
    Action("show-translate", "f4", "show_tab('translate')", "Translate", "Show the translate pane", show=False),
    Action("show-settings", "f5", "show_tab('settings')", "Settings", "Show the generation settings pane", show=False),
    # f6 is also the text inputs' "select line": priority lets it switch panes from there too
    Action("show-models", "f6", "show_tab('models')", "Models",
           "Show the models pane: local models, catalog, Hub search, downloads", priority=True, show=False),
    Action("show-inspect", "f8", "show_tab('inspect')", "Inspect",
           "Show the inspect pane: a text's tokens, next-token probabilities, perplexity", priority=True, show=False),
    Action("show-ask", "f9", "show_tab('ask')", "Ask", "Show the ask pane: questions answered from your documents",
           priority=True, show=False),
    Action("stop", "escape", "stop", "Stop", "Stop the reply or task being generated (its text is kept)",
           priority=True),
    Action("run-task", "ctrl+g", "run_task", "Run", "Summarize, translate, generate or ask (in those panes)"),
    Action("save-settings", "ctrl+s", "save_settings", "Save settings",
           "Save the current parameters to the config file", show=False),
    Action("reload-model", "f12", "reload_model", "Reload model", "Load the model again with the load settings",
           show=False),
    # the first start's welcome names this key
    Action("pull-recommended", "f10", "pull_recommended", "Download recommended model",
           "Download the catalog model recommended for this machine (multilingual), in the background", show=False),
)

# Actions of the chat pane (ChatPane.BINDINGS): they act while the chat has focus;
# the command palette offers them from every pane.
CHAT_ACTIONS: tuple[Action, ...] = (
    Action("new-conversation", "ctrl+n", "new_conversation", "New", "Start a new conversation"),
    Action("regenerate", "ctrl+r", "regenerate", "Regenerate", "Generate the last reply again"),
    Action("toggle-sidebar", "ctrl+b", "toggle_sidebar", "Conversations", "Show or hide the conversation list"),
    Action("search-conversations", "ctrl+f", "search_conversations", "Search", "Search conversations by text",
           show=False),
    Action("focus-input", "ctrl+l", "focus_input", "Input", "Move the cursor to the message input", show=False),
    Action("copy-last", "ctrl+t", "copy_last", "Copy reply", "Copy the last reply to the clipboard", show=False),
    Action("show-earlier", "ctrl+o", "show_earlier", "Earlier", "Show earlier messages of a long conversation",
           show=False),
    # f11: the text inputs take most ctrl keys; the palette offers it too ("Template")
    Action("use-template", "f11", "pick_template", "Template",
           "Use a template for the next message (email reply, news, commit message, …): pick one, fill its variables",
           show=False),
    # priority: the message input would otherwise take Esc first
    Action("cancel-edit", "escape", "cancel_edit", "Cancel edit", "Stop editing a message (the original stays)",
           priority=True),
)

# Actions on the highlighted conversation of the side list (Sidebar.BINDINGS);
# also offered by the command palette for the open conversation.
CONVERSATION_ACTIONS: tuple[Action, ...] = (
    Action("rename-conversation", "r", "rename_conversation", "Rename", "Rename the current conversation"),
    Action("export-conversation", "x", "export_conversation", "Export",
           "Export the current conversation to Markdown or JSON"),
    Action("delete-conversation", "delete,d", "delete_conversation", "Delete",
           "Delete the current conversation (asks first)"),
)

# Actions on the selected message of the chat log (ChatLog.BINDINGS).
MESSAGE_ACTIONS: tuple[Action, ...] = (
    Action("message-up", "up,k", "select(-1)", "Previous", "Select the previous message", show=False),
    Action("message-down", "down,j", "select(1)", "Next", "Select the next message", show=False),
    Action("message-copy", "c", "copy_message", "Copy", "Copy the selected message"),
    Action("message-copy-code", "y", "copy_code", "Copy code", "Copy the code blocks of the selected message"),
    Action("message-edit", "e", "edit_message", "Edit", "Edit the selected user message and resend it "
           "(the conversation continues from there)"),
)

# Keys of the models pane (ModelsPane.BINDINGS); they act while one of its tables has focus.
MODELS_ACTIONS: tuple[Action, ...] = (
    Action("models-pull", "p", "pull", "Pull", "Download the selected catalog model, search result or file"),
    Action("models-load", "l", "load", "Load",
           "Load the selected local model (the chat continues with it), or add the selected LoRA adapter to it"),
    Action("models-default", "d", "make_default", "Default", "Make the selected local model the default"),
    Action("models-delete", "delete", "delete", "Delete", "Delete the selected local model (asks first)"),
    Action("models-cancel", "c", "cancel_download", "Cancel", "Stop the running download (it resumes later)"),
    Action("models-search", "slash", "focus_search", "Search", "Search the Hub for GGUF models"),
    # out of the footer: at 80 columns F1 would no longer fit (the pane's hint names it)
    Action("models-finetune", "t", "finetune", "Fine-tune",
           "Fine-tune the selected local model on your data into a new local model (also in the palette)", show=False),
)

# Keys of the fine-tune screen (FinetuneScreen.BINDINGS); the palette's "Fine-tune…" opens it.
FINETUNE_ACTIONS: tuple[Action, ...] = (
    Action("finetune-start", "ctrl+g", "start", "Start", "Start fine-tuning with these settings (in the background)"),
    Action("finetune-stop", "escape", "stop", "Stop", "Stop the training after the current step (nothing is saved)"),
    Action("finetune-close", "escape", "close", "Close",
           "Close the fine-tune screen (F2–F9 go back to the panes while it trains on)"),
    Action("finetune-load", "ctrl+l", "load", "Load it", "Load the model the training made"),
)

# Keys of the inspect pane (InspectPane.BINDINGS).
INSPECT_ACTIONS: tuple[Action, ...] = (
    Action("inspect-score", "ctrl+o", "score", "Score", "Score the text: its perplexity and each token's probability"),
    # ctrl+t: the text inputs take most ctrl keys (the chat's ctrl+t acts only in the chat)
    Action("inspect-attention", "ctrl+t", "toggle_attention", "Attention",
           "Show what each token attends to (self-attention, local models): ←/→ or a click picks a token, the "
           "earlier ones are shaded by its weights; layer and head selectors below; again: back to probabilities"),
)

# Keys of the message input (PromptInput).
INPUT_ACTIONS: tuple[Action, ...] = (
    Action("send", "enter", "send", "Send", "Send the message"),
    Action("newline", "ctrl+j,shift+enter", "newline", "Newline", "Insert a line break (many terminals never "
           "send ctrl+enter)"),
)

ALL_ACTIONS = (APP_ACTIONS + CHAT_ACTIONS + CONVERSATION_ACTIONS + MESSAGE_ACTIONS + INPUT_ACTIONS + MODELS_ACTIONS
               + INSPECT_ACTIONS + FINETUNE_ACTIONS)
