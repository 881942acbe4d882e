import { describe, expect, it } from "vitest";
import { assistantBody, chatModels, EMPTY_ASSISTANT, formOf, parseTemperature } from "./assistants";

describe("assistantBody", () => {
  it("trims the name, leaves a blank temperature out and parses a set one", () => {
    const form = { ...EMPTY_ASSISTANT, name: " Tutor ", instructions: "Be kind.", visibility: "public" as const };
    expect(assistantBody(form)).toEqual({ name: "Tutor", description: "", instructions: "Be kind.", model: "", visibility: "public" });
    expect(assistantBody({ ...form, temperature: "0.7" }).temperature).toBe(0.7);
  });
  it("refuses a temperature outside 0..2 in words", () => {
    expect(() => parseTemperature("3")).toThrow(/from 0 to 2/);
    expect(() => parseTemperature("warm")).toThrow(/from 0 to 2/);
    expect(parseTemperature(" ")).toBeUndefined();
    expect(parseTemperature("0")).toBe(0);
  });
  it("round-trips an assistant through its form", () => {
    const form = formOf({ name: "A", instructions: "I", temperature: 0, visibility: "public", model: "m" });
    expect(form).toEqual({ name: "A", description: "", instructions: "I", model: "m", temperature: "0", visibility: "public" });
  });
});

describe("chatModels", () => {
  it("lists CHAT models once, defaults first, then CHAT aliases", () => {
    const models = chatModels(
      [
        {
          name: "openai",
          models: [
            { id: "img", kinds: ["IMAGE"] },
            { id: "small", display_name: "Small", kinds: ["TEXT", "CHAT"] },
            { id: "big", display_name: "Big", kinds: ["CHAT"], is_default: true, premium: true },
          ],
        },
        { name: "other", models: [{ id: "small", kinds: ["CHAT"] }] },
      ],
      [{ name: "default-chat", kinds: ["CHAT"] }, { name: "default-text", kinds: ["TEXT"] }],
    );
    expect(models).toEqual([
      { id: "big", label: "Big (openai) · premium" },
      { id: "small", label: "Small (openai)" },
      { id: "default-chat", label: "default-chat (alias)" },
    ]);
  });
});
