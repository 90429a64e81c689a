/* The SDL2 preview window: the camera image with the parts alpha-blended
 * (or the label map alone, or part outlines), a legend, the face box, and a
 * tuning overlay (fps, latency, stage times, drops, model resolution).
 *
 * Every function runs on the thread that called preview_open() (SDL's
 * video subsystem belongs to one thread). Text uses SDL_ttf with DejaVu
 * Sans Mono; without the font the overlay shows no text and a message says
 * so once.
 */
#include "render.h"

#include <SDL.h>
#include <SDL_ttf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FONT_PATH "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
#define FONT_SIZE 13
#define HUD_LINES 6

static const char *const class_names[RENDER_NUM_CLASSES] = {
	"background", "skin", "nose", "glasses", "l_eye", "r_eye", "l_brow", "r_brow",
	"l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "earring",
	"necklace", "neck", "cloth",
};

struct preview {
	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *frame;     /* streaming, ABGR8888 = R, G, B, A bytes */
	SDL_Texture *legend;
	TTF_Font *font;
	int width, height;
	char renderer[96];      /* SDL's renderer and why it was chosen */
	struct preview_view view;
	struct preview_hud last_hud;
	char hud_text[HUD_LINES][96];
	SDL_Texture *hud[HUD_LINES];
};

static SDL_Texture *text_texture(struct preview *pv, const char *text, SDL_Color color)
{
	SDL_Surface *s;
	SDL_Texture *t;

	if (!pv->font || !*text)
		return NULL;
	s = TTF_RenderUTF8_Blended(pv->font, text, color);
	if (!s)
		return NULL;
	t = SDL_CreateTextureFromSurface(pv->ren, s);
	SDL_FreeSurface(s);
	return t;
}

/* The legend: a swatch and a name per class, drawn once into a texture. */
static void build_legend(struct preview *pv)
{
	const int row = 16, w = 110, h = row * (RENDER_NUM_CLASSES - 1) + 6;
	SDL_Color white = { 235, 235, 235, 255 };

	pv->legend = SDL_CreateTexture(pv->ren, SDL_PIXELFORMAT_ABGR8888, SDL_TEXTUREACCESS_TARGET, w, h);
	if (!pv->legend)
		return;
	SDL_SetTextureBlendMode(pv->legend, SDL_BLENDMODE_BLEND);
	SDL_SetRenderTarget(pv->ren, pv->legend);
	SDL_SetRenderDrawColor(pv->ren, 0, 0, 0, 150);
	SDL_RenderClear(pv->ren);
	for (int c = 1; c < RENDER_NUM_CLASSES; c++) {
		const uint8_t *rgb = render_palette[c];
		SDL_Rect sw = { 4, 3 + (c - 1) * row, 12, 12 };
		SDL_SetRenderDrawColor(pv->ren, rgb[0], rgb[1], rgb[2], 255);
		SDL_RenderFillRect(pv->ren, &sw);
		SDL_Texture *t = text_texture(pv, class_names[c], white);
		if (t) {
			SDL_Rect dst = { 22, 1 + (c - 1) * row, 0, 0 };
			SDL_QueryTexture(t, NULL, NULL, &dst.w, &dst.h);
			SDL_RenderCopy(pv->ren, t, NULL, &dst);
			SDL_DestroyTexture(t);
		}
	}
	SDL_SetRenderTarget(pv->ren, NULL);
}

/* The GL renderer's rasteriser, when it is Mesa's software one (llvmpipe,
 * softpipe, swrast: a VM, a remote desktop, SDL's offscreen driver). */
static const char *gl_software_rasteriser(SDL_Renderer *ren)
{
	static const char *const soft[] = { "llvmpipe", "softpipe", "swrast", "Software Rasterizer" };
	const unsigned char *(*get_string)(unsigned int);
	SDL_RendererInfo info;
	const char *name;

	if (SDL_GetRendererInfo(ren, &info) != 0 || strncmp(info.name, "opengl", 6) != 0)
		return NULL;
	*(void **)&get_string = SDL_GL_GetProcAddress("glGetString");
	name = get_string ? (const char *)get_string(0x1F01 /* GL_RENDERER */) : NULL;
	for (size_t i = 0; name && i < sizeof(soft) / sizeof(soft[0]); i++)
		if (strstr(name, soft[i]))
			return soft[i];
	return NULL;
}

/* SDL's first renderer, unless it is GL on a software rasteriser: that
 * spends threads of its own on every frame for what is one full-frame copy,
 * which SDL's software renderer does on this thread at a fraction of the
 * cost. A renderer the user names (SDL_RENDER_DRIVER) is kept as it is. */
static SDL_Renderer *create_renderer(SDL_Window *win, char *desc, size_t desclen)
{
	SDL_Renderer *ren = SDL_CreateRenderer(win, -1, 0);
	const char *asked = SDL_GetHint(SDL_HINT_RENDER_DRIVER);
	const char *soft = ren && !(asked && *asked) ? gl_software_rasteriser(ren) : NULL;
	SDL_RendererInfo info;

	if (soft) {
		SDL_DestroyRenderer(ren);
		/* or SDL puts the window's surface in a GL texture again */
		SDL_SetHintWithPriority(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0", SDL_HINT_DEFAULT);
		ren = SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE);
	}
	if (!ren || SDL_GetRendererInfo(ren, &info) != 0)
		return ren;
	if (soft)
		snprintf(desc, desclen, "%s (GL would run on %s)", info.name, soft);
	else
		snprintf(desc, desclen, "%s", info.name);
	return ren;
}

const char *preview_renderer(const struct preview *pv)
{
	return pv->renderer;
}

int preview_open(int width, int height, struct preview **out, char *err, size_t errlen)
{
	struct preview *pv;

	*out = NULL;
	if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
		snprintf(err, errlen, "preview: cannot start SDL video: %s", SDL_GetError());
		return -ENODEV;
	}
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		SDL_QuitSubSystem(SDL_INIT_VIDEO);
		return -ENOMEM;
	}
	pv->width = width;
	pv->height = height;
	pv->view = (struct preview_view){ .mode = PREVIEW_OUTPUT, .hud = 1, .legend = 1,
					  .face_box = 0 };
	pv->win = SDL_CreateWindow("facetd", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
				   width, height, SDL_WINDOW_RESIZABLE);
	pv->ren = pv->win ? create_renderer(pv->win, pv->renderer, sizeof(pv->renderer)) : NULL;
	pv->frame = pv->ren ? SDL_CreateTexture(pv->ren, SDL_PIXELFORMAT_ABGR8888,
						SDL_TEXTUREACCESS_STREAMING, width, height) : NULL;
	if (!pv->frame) {
		snprintf(err, errlen, "preview: cannot create the window: %s", SDL_GetError());
		preview_close(pv);
		return -ENODEV;
	}
	SDL_RenderSetLogicalSize(pv->ren, width, height);
	if (TTF_Init() == 0)
		pv->font = TTF_OpenFont(FONT_PATH, FONT_SIZE);
	build_legend(pv);
	*out = pv;
	return 0;
}

void preview_close(struct preview *pv)
{
	if (!pv)
		return;
	for (int i = 0; i < HUD_LINES; i++)
		if (pv->hud[i])
			SDL_DestroyTexture(pv->hud[i]);
	if (pv->legend)
		SDL_DestroyTexture(pv->legend);
	if (pv->font) {
		TTF_CloseFont(pv->font);
		TTF_Quit();
	}
	if (pv->frame)
		SDL_DestroyTexture(pv->frame);
	if (pv->ren)
		SDL_DestroyRenderer(pv->ren);
	if (pv->win)
		SDL_DestroyWindow(pv->win);
	free(pv);
	SDL_QuitSubSystem(SDL_INIT_VIDEO);
}

/* Part borders in their colour over the image. */
static void draw_outlines(uint8_t *rgba, int pitch, const uint8_t *labels, int w, int h)
{
	for (int y = 0; y < h; y++) {
		const uint8_t *l = labels + (size_t)y * w;
		for (int x = 0; x < w; x++) {
			uint8_t v = l[x];
			int edge = (x + 1 < w && l[x + 1] != v) || (y + 1 < h && l[x + w] != v);
			if (!edge || v >= RENDER_NUM_CLASSES)
				continue;
			uint8_t *p = rgba + (size_t)y * pitch + (size_t)x * 4;
			const uint8_t *c = render_palette[v ? v : l[x + 1 < w ? x + 1 : x]];
			p[0] = c[0], p[1] = c[1], p[2] = c[2];
		}
	}
}

/* Into the frame texture (pitch bytes a row): OUTPUT shows the effect's
 * frame as the outputs get it; LABELS the label map alone; OUTLINES part
 * borders over the camera image. */
static void compose(struct preview *pv, uint8_t *dst, int pitch, const uint8_t *camera,
		    const uint8_t *output, int stride, const uint8_t *labels)
{
	int w = pv->width, h = pv->height;
	const uint8_t *src = pv->view.mode == PREVIEW_OUTPUT || !labels ? output : camera;

	if (pv->view.mode == PREVIEW_LABELS && labels) {
		render_labels(dst, pitch, labels, w, w, h);
		return;
	}
	for (int y = 0; y < h; y++)
		memcpy(dst + (size_t)y * pitch, src + (size_t)y * stride, (size_t)w * 4);
	if (labels && pv->view.mode == PREVIEW_OUTLINES)
		draw_outlines(dst, pitch, labels, w, h);
}

static void draw_hud(struct preview *pv, const struct preview_hud *hud)
{
	SDL_Color white = { 255, 255, 255, 255 };
	char lines[HUD_LINES][96];
	int y = 6;

	snprintf(lines[0], 96, "capture %5.1f fps  inference %5.1f fps", hud->fps_capture, hud->fps_inference);
	snprintf(lines[1], 96, "latency %5.1f ms  parts %5.1f ms (p50)", hud->latency_ms,
		 hud->parts_age_ms);
	snprintf(lines[2], 96, "encode %5.1f ms  decode %5.1f ms", hud->encode_ms, hud->decode_ms);
	snprintf(lines[3], 96, "dropped %llu  model %dx%d", (unsigned long long)hud->dropped, hud->res, hud->res);
	snprintf(lines[4], 96, "%s", hud->source);
	snprintf(lines[5], 96, "%s", hud->status);
	SDL_Rect bg = { 4, 4, 330, 4 + 16 * HUD_LINES };
	SDL_SetRenderDrawBlendMode(pv->ren, SDL_BLENDMODE_BLEND);
	SDL_SetRenderDrawColor(pv->ren, 0, 0, 0, 150);
	SDL_RenderFillRect(pv->ren, &bg);
	for (int i = 0; i < HUD_LINES; i++, y += 16) {
		if (strcmp(lines[i], pv->hud_text[i]) != 0 || !pv->hud[i]) {
			if (pv->hud[i])
				SDL_DestroyTexture(pv->hud[i]);
			pv->hud[i] = text_texture(pv, lines[i], white);
			memcpy(pv->hud_text[i], lines[i], sizeof(lines[i]));
		}
		if (pv->hud[i]) {
			SDL_Rect dst = { 8, y, 0, 0 };
			SDL_QueryTexture(pv->hud[i], NULL, NULL, &dst.w, &dst.h);
			SDL_RenderCopy(pv->ren, pv->hud[i], NULL, &dst);
		}
	}
}

/* Draws the frame texture and the overlays into the back buffer. */
static void draw_scene(struct preview *pv)
{
	const struct preview_hud *hud = &pv->last_hud;

	SDL_RenderClear(pv->ren);
	SDL_RenderCopy(pv->ren, pv->frame, NULL, NULL);
	if (pv->view.face_box && hud->box_w > 0) {
		SDL_Rect r = { hud->box_x, hud->box_y, hud->box_w, hud->box_h };
		SDL_SetRenderDrawColor(pv->ren, 255, 255, 0, 255);
		SDL_RenderDrawRect(pv->ren, &r);
	}
	if (pv->view.legend && pv->legend) {
		SDL_Rect dst = { pv->width - 114, 4, 0, 0 };
		SDL_QueryTexture(pv->legend, NULL, NULL, &dst.w, &dst.h);
		SDL_RenderCopy(pv->ren, pv->legend, NULL, &dst);
	}
	if (pv->view.hud)
		draw_hud(pv, hud);
}

int preview_present(struct preview *pv, const uint8_t *camera, const uint8_t *output,
		    int stride, const uint8_t *labels, const struct preview_hud *hud)
{
	void *px;
	int pitch;

	pv->last_hud = *hud;
	if (SDL_LockTexture(pv->frame, NULL, &px, &pitch) != 0)
		return -EIO;
	compose(pv, px, pitch, camera, output, stride, labels);
	SDL_UnlockTexture(pv->frame);
	draw_scene(pv);
	SDL_RenderPresent(pv->ren);
	return 0;
}

static enum preview_action key_action(struct preview *pv, SDL_Keycode k)
{
	switch (k) {
	case SDLK_ESCAPE: case SDLK_q: return PREVIEW_QUIT;
	case SDLK_o: pv->view.hud = !pv->view.hud; return PREVIEW_NONE;
	case SDLK_l: pv->view.legend = !pv->view.legend; return PREVIEW_NONE;
	case SDLK_m: pv->view.mode = (pv->view.mode + 1) % 3; return PREVIEW_NONE;
	case SDLK_f: pv->view.face_box = !pv->view.face_box; return PREVIEW_NONE;
	case SDLK_EQUALS: case SDLK_PLUS: case SDLK_KP_PLUS: return PREVIEW_ALPHA_UP;
	case SDLK_MINUS: case SDLK_KP_MINUS: return PREVIEW_ALPHA_DOWN;
	case SDLK_PAGEUP: case SDLK_RIGHTBRACKET: return PREVIEW_RES_UP;
	case SDLK_PAGEDOWN: case SDLK_LEFTBRACKET: return PREVIEW_RES_DOWN;
	case SDLK_s: return PREVIEW_SCREENSHOT;
	case SDLK_e: return PREVIEW_EFFECT_NEXT;
	default: return PREVIEW_NONE;
	}
}

enum preview_action preview_poll(struct preview *pv)
{
	SDL_Event e;

	while (SDL_PollEvent(&e)) {
		if (e.type == SDL_QUIT)
			return PREVIEW_QUIT;
		if (e.type == SDL_KEYDOWN) {
			enum preview_action a = key_action(pv, e.key.keysym.sym);
			if (a != PREVIEW_NONE)
				return a;
		}
	}
	return PREVIEW_NONE;
}

struct preview_view *preview_view(struct preview *pv)
{
	return &pv->view;
}

int preview_screenshot(struct preview *pv, const char *path)
{
	int w, h, r;
	uint8_t *px;

	SDL_GetRendererOutputSize(pv->ren, &w, &h);
	px = malloc((size_t)w * h * 4);
	if (!px)
		return -ENOMEM;
	draw_scene(pv); /* the back buffer is undefined after a present */
	r = SDL_RenderReadPixels(pv->ren, NULL, SDL_PIXELFORMAT_ABGR8888, px, w * 4);
	SDL_RenderPresent(pv->ren);
	r = r == 0 ? image_save_png(path, px, w * 4, w, h, 4) : -EIO;
	free(px);
	return r;
}
